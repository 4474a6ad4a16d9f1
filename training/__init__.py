"""Training-side code for mtdetect: corpus building, synthetic data, training, export.

Nothing in here is imported by the runtime package ``detector``.
"""
