"""Feed-forward DNN acoustic models for hybrid DNN-HMM systems: model, frame data, CE training, ensembles."""
