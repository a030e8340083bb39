"""espnet-pathways: ASR Pathways and Dynamic ASR Pathways as an ESPnet plugin."""

from setuptools import find_packages, setup

setup(
    name="espnet-pathways",
    version="0.1.0",
    description=(
        "Per-language pruning of multilingual streaming ASR models "
        "(ASR Pathways, Dynamic ASR Pathways) as an ESPnet plugin"
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["espnet_pathways", "espnet_pathways.*"]),
    python_requires=">=3.10,<3.12",
    install_requires=[
        "espnet==202511",
        "torch==2.11.0",
        "torchaudio==2.11.0",  # 2.11.1 needs a newer torch ABI than 2.11.0
        "sentencepiece>=0.1.99",
        "pyyaml>=6.0",
        "soundfile>=0.12",
        "matplotlib>=3.7",
        "tqdm>=4.60",
        "wordfreq==3.1.1",
        # espnet imports g2p_en -> inflect in every process it starts (training, decoding, stats).
        # inflect >= 6 instruments its functions with typeguard while importing: 4-5 s per process on
        # a 2-core VM, against 0.07 s for 5.x. Nothing here uses it (no phoneme tokenizer).
        "inflect<6",
    ],
    extras_require={"dev": ["pytest>=7.4", "pytest-timeout>=2.2"]},
)
