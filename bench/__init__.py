"""optrun's benchmarks: ratios against numpy/scipy, GPflow and Keras, in one run."""
