"""Command-line entry points; each imports the plugin first, then hands over to ESPnet's machinery."""
