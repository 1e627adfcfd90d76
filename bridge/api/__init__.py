"""The unit's outputs on the LAN: the JSON API, push, the native /ws, the web UI, the advert.

Outputs serialise what the unit measured; they never compute metering.
"""
