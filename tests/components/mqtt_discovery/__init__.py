"""The bridge's MQTT discovery, checked by Home Assistant's own MQTT integration."""
