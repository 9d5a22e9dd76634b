"""Reference values for skyzip-eval's ROC AUC and accuracy tests (scikit-learn).

Run: python3 tools/pin_roc_auc.py — the printed values are pinned in crates/skyzip-eval/src/metrics.rs.
"""
from sklearn.metrics import roc_auc_score, accuracy_score

# 30 pixels of a segmentation: labels, scores with ties across the classes.
labels = [0, 0, 1, 1, 0, 1, 0, 1, 1, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 0, 1]
scores = [0.1, 0.4, 0.35, 0.8, 0.4, 0.9, 0.05, 0.35, 0.6, 0.2, 0.7, 0.4, 0.02, 0.02, 0.5,
          0.5, 0.97, 0.3, 0.1, 0.6, 0.02, 0.25, 0.45, 0.45, 0.0, 0.15, 0.99, 0.33, 0.01, 0.62]
print("roc_auc", repr(roc_auc_score(labels, scores)))
print("accuracy@0.4", repr(accuracy_score(labels, [s > 0.4 for s in scores])))
