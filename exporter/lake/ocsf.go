package lake

func ocsfSelect() string { return exportSelect() }
