"""Multimodal patient models over the domains' encoders, drug-response prediction, and a
simulator of linked cohorts with planted signal."""
