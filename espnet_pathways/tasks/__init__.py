"""ESPnet tasks of the plugin."""
