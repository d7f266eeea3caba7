"""Pure array algorithms: arrays in, float32 NHWC numpy arrays out; no I/O, no rendering.

Modules: ``feature_maps`` (layer outputs), ``cam`` (the CAM template) with ``cam_methods``
(Grad-CAM, Grad-CAM++, XGrad-CAM, Score-CAM, LayerCAM, HiResCAM, Eigen-CAM),
``attribution`` (SmoothGrad, integrated gradients, occlusion) with ``attribution_options``,
``backprop`` (gradient, deconvnet and guided backpropagation projections, Guided Grad-CAM),
``filters`` (filter patterns by activation maximization), ``top_examples``,
``receptive_field``, ``faithfulness``, ``drift``, ``sanity``.

Example:
    >>> from tb_cnnvis.algorithms import cam
    >>> cam.cam_details(model, images, "conv2").maps.shape
    (4, 32, 32)
"""
