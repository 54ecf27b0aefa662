"""What is done with a model's outputs.

Test prediction in torch or ONNX Runtime (``inference``, ``onnx_inference``), out-of-fold
scores and calibration (``cross_validation``), neighbour smoothing (``neighbours``), blends
(``blending``), pseudo-labels (``pseudo_labels``), metrics and plots (``metrics``, ``reports``).
"""
