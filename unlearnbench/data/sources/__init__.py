"""Dataset sources: each registered function returns a RawData of NCHW arrays."""
