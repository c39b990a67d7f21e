"""Spread prediction and the model lifecycle (docs/ml.md).

``dataset`` / ``export`` / ``metrics`` / ``registry`` need only numpy and SQLAlchemy; ``model``,
``train``, ``shadow`` and ``scorer`` import PyTorch, and only when they are used: ``arb --help``
and the engine never pay for it.
"""
