"""Float models → `FloatGraph`: BN-folded float64 graphs of the image tower (from NIR or the
torch module) and the text tower, and their torch executor.

Takes an `export.nir` graph or a `spikeclip` module; returns a `FloatGraph` for the quantizer.
"""
