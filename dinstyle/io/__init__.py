"""Image, video and file I/O. Independent of the model: no torch here."""
