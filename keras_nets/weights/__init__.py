"""Published ImageNet weights: the manifest (`manifest`), the download cache (`cache`), fetching
into it (`download`), reading HDF5 files without loading them (`hdf5`) and loading weights into a
model (`loading`). `keras_nets.pretrained`, the old path, still gives every name of these."""
