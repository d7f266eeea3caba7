"""The tb-cnnvis demo: a generated shape data set, a small CNN, and a script that trains it
with ``CnnVisCallback`` and serves TensorBoard (``make demo`` or ``python -m demo.run``).

Modules: ``shapes`` (the data set), ``model`` (the CNN), ``train`` (training with the
callbacks, a folder-of-images reader), ``run`` (the command line).
"""
