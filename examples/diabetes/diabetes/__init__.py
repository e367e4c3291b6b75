"""A regression project on mlbuild's public API: scikit-learn's diabetes data, a ridge
model kept as JSON (nothing is unpickled), and RMSE/MAE gates.

    cd examples/diabetes && luigi --module diabetes FullPipeline
"""

import json

import luigi
from pydantic import Field

import mlbuild


class DiabetesConfig(mlbuild.ReleaseConfig):
    schema_: mlbuild.SchemaConfig = Field(alias="schema")
    test_fraction: float = Field(default=0.25, gt=0.0, lt=1.0)
    alpha: float = Field(default=1.0, ge=0.0)
    seed: int = 0


class diabetes(luigi.Config):
    config = luigi.Parameter(default="pipeline.toml")


def load() -> DiabetesConfig:
    return mlbuild.load_config(diabetes().config, DiabetesConfig)


class FetchData(mlbuild.BuildTask):
    outputs = {"raw": "raw.csv"}
    packages = ("scikit-learn",)  # the data ships inside it

    def build(self, inputs, outputs):
        from sklearn.datasets import load_diabetes

        load_diabetes(as_frame=True).frame.to_csv(outputs["raw"], index=False)


class ValidateData(mlbuild.BuildTask):
    outputs = {"report": "validation.json"}

    def requires(self):
        return {"raw": FetchData()}

    def settings(self):
        return {"schema": load().schema_.model_dump()}

    def build(self, inputs, outputs):
        frame = mlbuild.read_csv(inputs["raw"]["raw"], "the diabetes data")
        mlbuild.validate_schema(frame, load().schema_, "the diabetes data")
        outputs["report"].write_text(json.dumps({"rows": len(frame)}) + "\n")


class SplitData(mlbuild.BuildTask):
    outputs = {"train": "train.csv", "test": "test.csv"}
    packages = ("pandas", "scikit-learn")

    def requires(self):
        return {"raw": FetchData(), "validation": ValidateData()}

    def settings(self):
        config = load()
        return {"test_fraction": config.test_fraction, "seed": config.seed}

    def build(self, inputs, outputs):
        from sklearn.model_selection import train_test_split

        config = load()
        frame = mlbuild.read_csv(inputs["raw"]["raw"], "the diabetes data")
        train, test = train_test_split(frame, test_size=config.test_fraction,
                                       random_state=config.seed)
        train.sort_index().to_csv(outputs["train"], index=False)
        test.sort_index().to_csv(outputs["test"], index=False)


class TrainModel(mlbuild.BuildTask):
    outputs = {"model": "model.json"}
    code_modules = ("diabetes.model",)
    packages = ("scikit-learn",)

    def requires(self):
        return {"split": SplitData()}

    def settings(self):
        config = load()
        return {"alpha": config.alpha, "label": config.schema_.label}

    def build(self, inputs, outputs):
        from diabetes.model import train

        config = load()
        train(inputs["split"]["train"], outputs["model"], config.schema_.label, config.alpha)


class Release(mlbuild.ReleaseTask):
    inference = "diabetes.model"
    kind = "regression"

    def release_config(self):
        return load()

    def label(self):
        return load().schema_.label

    def model_task(self):
        return TrainModel()

    def test_task(self):
        return SplitData()


class EvaluateAccuracy(Release, mlbuild.EvaluateAccuracy):
    pass


class PublishModel(Release, mlbuild.PublishModel):
    pass


class BuildImage(Release, mlbuild.BuildImage):
    pass


class AcceptanceTest(Release, mlbuild.AcceptanceTest):
    pass


class PushImage(Release, mlbuild.PushImage):
    pass


class FullPipeline(mlbuild.FullPipeline):
    release = Release
