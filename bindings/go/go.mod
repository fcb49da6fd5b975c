module mm-session/mmsession

go 1.19
