"""nascomp: compress pretrained CNNs with neural architecture search."""
__version__ = "0.1.0"
