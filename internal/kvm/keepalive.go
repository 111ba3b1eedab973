package kvm

import "runtime"

func runtimeKeepAlive(x any) { runtime.KeepAlive(x) }
