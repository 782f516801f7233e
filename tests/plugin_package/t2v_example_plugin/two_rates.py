"""A fine-tuned method whose parameters train in two groups at two learning rates (as
MotionDirector trains its spatial and temporal LoRAs): LAMP's temporal adapter, its attention
(temporal attention and first-frame queries) at ``finetune.two_rates.attention_learning_rate``,
its temporal convolutions at ``conv_learning_rate``; sampled as LAMP samples."""

from __future__ import annotations

from dataclasses import dataclass, replace

from t2v_core.methods import register_method
from t2v_core.methods.lamp import LAMP, TEMPORAL_INIT, AdapterTraining
from t2v_core.settings import properties

RATES = properties("""\
attention_learning_rate:
  type: number
  exclusiveMinimum: 0
  default: 1.0e-4
  description: AdamW learning rate of the temporal attention and the first-frame queries.
conv_learning_rate:
  type: number
  minimum: 0
  default: 1.0e-5
  description: AdamW learning rate of the temporal convolutions and their gates.
""")


@dataclass(frozen=True)
class TwoRatesTraining(AdapterTraining):
    def build(self, base_components, model_dirs, finetune, device):
        from t2v_core.training.trainable import ParamGroup

        trainable = super().build(base_components, model_dirs, finetune, device)
        block, every = finetune[self.name], trainable.groups[0].parameters
        convolution = {name: p for name, p in every.items() if name.startswith("temporal_convs.")}
        attention = {name: p for name, p in every.items() if name not in convolution}
        trainable.groups = [ParamGroup("attention", attention, block["attention_learning_rate"]),
                            ParamGroup("convolution", convolution, block["conv_learning_rate"])]
        return trainable


TWO_RATES_TRAINING = TwoRatesTraining(
    "two_rates", "LAMP's temporal modules, attention and convolutions at two learning rates",
    settings={**TEMPORAL_INIT, **RATES})
TWO_RATES = replace(LAMP, name="two_rates", label="Two rates", training=TWO_RATES_TRAINING, poster={},
                    description="LAMP's recipe, the adapter's attention and convolutions at their own learning rates")
register_method(TWO_RATES)
