"""The NiceGUI dashboard (an MQTT client like any node)."""
