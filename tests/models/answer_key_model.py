"""A models-from-code pyfunc for gate tests: answers from an answer key in its model_config.

Config: ``key`` (prompt -> answer), ``wrong`` (prompts answered wrongly), ``fail`` (prompts whose
call raises, so the case must end ``unmeasured``).
"""

import mlflow
from mlflow.pyfunc import PythonModel


class AnswerKeyModel(PythonModel):
    def load_context(self, context):
        cfg = context.model_config
        self.key = dict(cfg["key"])
        self.wrong = set(cfg.get("wrong", []))
        self.fail = set(cfg.get("fail", []))

    def predict(self, context, model_input, params=None):
        out = []
        for prompt in list(model_input):
            if prompt in self.fail:
                raise RuntimeError(f"backend error on {prompt!r}")
            out.append("I do not know" if prompt in self.wrong else self.key[prompt])
        return out


mlflow.models.set_model(AnswerKeyModel())
