"""The cross-validated logistic regression the package fits on labels
(the `linear` reference and the classification `LinearBase`): one rule,
so that the two stay the same model."""

import inspect

import numpy as np

#: The inverse penalties C the cross-validation chooses from.
LOGISTIC_CS = np.logspace(-3, 3, 7)


def logistic_regression(labels, seed=0):
    """An unfitted scikit-learn logistic regression for integer `labels`:
    `LogisticRegressionCV` over `LOGISTIC_CS` (stratified folds, as many
    as the rarest present class allows up to 5, scored by the log loss)
    or, where some present class has a single label, a plain
    `LogisticRegression` (no cross-validation is possible). Fit it on
    standardised features."""
    from sklearn import linear_model
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(np.asarray(labels, "int64").reshape(-1))
    folds = int(min(5, counts[counts > 0].min()))
    if folds < 2:
        return linear_model.LogisticRegression(max_iter=2000)
    return linear_model.LogisticRegressionCV(
        Cs=LOGISTIC_CS,
        cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
        max_iter=2000,
        scoring="neg_log_loss",
        # scikit-learn 1.9's future defaults, where it has them.
        **supported_options(
            linear_model.LogisticRegressionCV,
            l1_ratios=(0.0,),
            use_legacy_attributes=False,
        ),
    )


def supported_options(estimator, **options):
    """The `options` that `estimator`'s constructor takes in the installed
    scikit-learn."""
    accepted = inspect.signature(estimator).parameters
    return {k: v for k, v in options.items() if k in accepted}
