"""Medical imaging: readers of NIfTI, DICOM, pictures and MedMNIST arrays into one image
record (issue 8; models, segmentation and explanations follow)."""
