from setuptools import find_packages, setup

setup(
    name="gandef_tf",
    version="0.1.0",
    description="TensorFlow 2 / Keras reproduction of GanDef (Liu, Khalil, Khreishah)",
    packages=find_packages(include=["gandef_tf", "gandef_tf.*", "experiments", "experiments.*"]),
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.16",
        "cleverhans==4.0.0",
        "numpy",
        "absl-py",
        "matplotlib",
    ],
    extras_require={
        "dev": ["pytest", "pytest-xdist"],  # make test runs two workers
        # AutoAttack's APGD-CE / APGD-DLR rows (gandef_tf/autoattack.py)
        "eval": ["adversarial-robustness-toolbox>=1.20"],
        "gpu": ["tensorflow[and-cuda]>=2.16"],
    },
)
