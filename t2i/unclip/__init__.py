"""unCLIP (Ramesh et al. 2022, DALL-E 2): caption -> CLIP text embedding -> prior -> CLIP image
embedding -> decoder UNet -> upsamplers.

- `clip_stage.py`: the training stage `clip` (contrastive image and text towers);
- `stages.py`: `prior` (caption -> CLIP image embedding), `decoder` and `upsampler`, the last two
  the shared UNet stage of t2i/train/unet_stage.py with unCLIP's options;
- `sampling.py`: the prior at sampling time, with its candidate choice;
- `caption_memory.py`: nearest training captions by the frozen sentence encoder (natural prompts);
- `options.py`: the pipeline's sampling options (light: the CLI reads them for its flags);
- `pipeline.py`: UnclipPipeline, the chain at sampling time;
- `ablation.py`: what the decoder is conditioned on (`t2i eval ablation`, paper section 5.1).
"""
