"""The unit's optional services: cloud, local MQTT, Modbus TCP server, GPIO lights, Wi-Fi, setup AP.

Each sees the unit only through ``bridge.components.UnitContext``.
"""
