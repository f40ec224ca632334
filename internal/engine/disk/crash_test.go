package disk

const crashChildEnv = "RUNNEL_DISK_CRASH_CHILD"

func crashChild() {}
