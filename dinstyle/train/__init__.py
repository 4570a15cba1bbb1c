"""Training: VGG losses, the data stream and one linear training loop."""
