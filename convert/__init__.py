"""Desktop side: full-integer int8 TFLite conversion of the digit CNN, its verification and model card."""
