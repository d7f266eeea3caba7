"""Packaging for tb-cnnvis.

TensorFlow is published as two distributions that install the same import package:
``tensorflow`` (GPU-capable, large) and ``tensorflow-cpu``. Naming either one in
``install_requires`` would make pip install it next to the other one a user already has,
so, like other TensorFlow add-ons, we leave TensorFlow out of the hard requirements and
offer it through extras: ``pip install tb-cnnvis[cpu]`` or ``tb-cnnvis[gpu]``, or plain
``tb-cnnvis`` into an environment that already has either. ``import tb_cnnvis`` checks
the version at first use and says what to install when TensorFlow is missing.
"""

from pathlib import Path

from setuptools import find_packages, setup

TEST_REQUIRES = [
    "pytest>=8",
    "ruff>=0.6",
    "playwright>=1.45",
    "pillow>=10",
]

setup(
    name="tb-cnnvis",
    version="0.1.0",
    description="See what a CNN learns while it trains: feature maps, filter patterns, "
    "Grad-CAM and deconvnet projections, epoch by epoch, in a TensorBoard tab.",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=[*find_packages(include=["tb_cnnvis", "tb_cnnvis.*"]), "tb_cnnvis.frontend"],
    # The frontend lives in ./frontend in the source tree and is installed as the
    # package data folder tb_cnnvis/frontend, so a non-editable install carries it.
    package_dir={"tb_cnnvis.frontend": "frontend"},
    package_data={
        "tb_cnnvis": ["http_api.md"],
        "tb_cnnvis.frontend": ["*.js", "*.css", "*.html"],
    },
    include_package_data=False,
    install_requires=[
        "tensorboard>=2.16",
        "numpy>=1.23",
        "werkzeug>=2.0",
        "protobuf>=3.20",
    ],
    extras_require={
        "cpu": ["tensorflow-cpu>=2.16"],
        "gpu": ["tensorflow[and-cuda]>=2.16"],
        "test": TEST_REQUIRES,
    },
    entry_points={
        "tensorboard_plugins": ["cnnvis = tb_cnnvis.plugin_loader:CnnVisLoader"],
        "console_scripts": ["tb-cnnvis = tb_cnnvis.cli:main"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Framework :: TensorFlow",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
