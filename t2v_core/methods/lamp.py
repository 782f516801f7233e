"""LAMP (Wu et al., CVPR 2024): few-shot tuning of temporal modules (:class:`TemporalAdapter`)
with first-frame conditioning, sampled with the first frame given, LAMP's shared noise and
AdaIN (:class:`t2v_core.pipeline.FirstFrameVideoPipeline`), then, as LAMP's inference script, every
frame's histogram matched to the first frame's (``sampling.<method>.histogram_matching``)."""

from __future__ import annotations

from .base import Method, Training


class AdapterMethod(Method):
    """A method that samples a fine-tuned temporal adapter (LAMP, and Ours in both modes)."""

    def load(self, model_dirs, adapter_dir, device, dtype=None):
        import torch

        from ..pipeline import FirstFrameVideoPipeline
        from ..video_unet import TemporalAdapter

        parts = super().load(model_dirs, adapter_dir, device, dtype)
        # stored in finetune.save_dtype; sampled in the models' dtype
        adapter = TemporalAdapter.from_pretrained(adapter_dir, torch_dtype=dtype or torch.float32).to(device).eval()
        pipe = FirstFrameVideoPipeline(**parts, adapter=adapter)
        pipe.set_progress_bar_config(desc=f"{self.name} denoising")
        return pipe

    def sample(self, loaded, prompt, generator, video, sampling, first_frame=None):
        return self.sample_batch(loaded, prompt, [generator], video, sampling, first_frame)[0]

    def sample_batch(self, loaded, prompt, generators, video, sampling, first_frame=None):
        from ..sampling import match_histograms_to_first_frame

        settings = sampling[self.name]
        videos = loaded(
            prompt, first_frame=first_frame,
            num_frames=video["num_frames"], height=video["height"], width=video["width"],
            num_inference_steps=sampling["num_inference_steps"], guidance_scale=settings["guidance_scale"],
            generator=list(generators), shared_noise_alpha=settings["shared_noise_alpha"], adain=settings["adain"],
            adain_late_fraction=settings["adain_late_fraction"],
        ).frames
        return [match_histograms_to_first_frame(frames) if settings["histogram_matching"] else frames
                for frames in videos]


LAMP_TRAINING = Training("lamp", "LAMP's temporal modules, first-frame conditioned, plain diffusion loss on frames 2..F")
LAMP = AdapterMethod(
    "lamp", "LAMP", "few-shot tuned temporal modules, first frame given (LAMP's reference recipe)",
    poster={"alignment": 29.01, "consistency": 98.12, "diversity": 86.51}, first_frame="latents", training=LAMP_TRAINING)

METHODS = (LAMP,)
