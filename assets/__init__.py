"""Small static files the product ships (report template, 3D viewer), read with importlib.resources."""
