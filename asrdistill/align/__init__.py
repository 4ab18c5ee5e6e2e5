"""GMM-HMM alignment: features, monophone and triphone training, alignment dirs, boundary scoring."""
