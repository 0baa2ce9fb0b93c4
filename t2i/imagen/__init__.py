"""Imagen (Saharia et al. 2022): the frozen MiniLM's token states condition every UNet of a cascade.

- `stages.py`: the training stages `imagen-base` (text -> 32x32) and `imagen-sr` (text + a
  low-resolution image -> a larger one, with noise-conditioning augmentation), both the one UNet
  stage of t2i/train/unet_stage.py with their own options;
- `options.py`: the pipeline's sampling options (light: the CLI reads them for its flags);
- `pipeline.py`: ImagenPipeline, the cascade at sampling time.
"""
