"""Knowledge distillation of an ensemble of DNN acoustic models into one model (Hinton et al. 2015, Sec. 4)."""
