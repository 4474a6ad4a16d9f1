"""Shipped model folders (installed as the package data ``detector.models``)."""
