"""Small helpers shared by the plugin's modules."""
