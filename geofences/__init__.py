"""Geofences: model, validation, GeoJSON and the H3 cover index. Pure: no I/O frameworks."""
