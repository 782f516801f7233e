"""The toy world: a synthetic world where the methods can really learn.

Shapes, colours and motions (:mod:`.world`), a ground-truth motion metric
(:mod:`.motion_metric`), and models trained on it with this project's code (:mod:`.train`,
the command line, over one module per model and :mod:`.train_common`); the trained ones ship
in ``SHIPPED_MODELS`` and are the demo's models. :mod:`.plugin` plugs all of it into the core
(``data.source: toy``, ``models.source: toy``); the core never imports this package.
"""

from pathlib import Path

#: The trained toy models (``base``, ``clip``, ``sam``, and the ``vae`` the base was trained
#: on), exactly as ``make toy-models`` (``python -m t2v_core.toy.train``) writes them.
SHIPPED_MODELS = Path(__file__).parent / "models"


def toy_model_dir(kind: str, toy_dir=None) -> Path:
    """The folder of the trained toy ``kind`` model: in ``toy_dir``, else the shipped one."""
    return Path(toy_dir or SHIPPED_MODELS) / kind
