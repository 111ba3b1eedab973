package fcapi

// action is one parsed API request, independent of HTTP: the typed value
// that the preboot or the runtime half of the server applies.
type action interface{ isAction() }

type (
	getInstanceInfo  struct{}
	getMachineConfig struct{}
	getVersion       struct{}
	getFullConfig    struct{}
	getBalloon       struct{}
	getBalloonStats  struct{}

	updateMachineConfig struct{ update machineConfigPatch }
	putBootSource       struct{ cfg bootSource }
	putDrive            struct{ cfg drive }
	patchDrive          struct{ cfg drivePatch }
	putNetwork          struct{ cfg networkInterface }
	patchNetwork        struct{ cfg networkInterfacePatch }
	putVsock            struct{ cfg vsockConfig }
	putBalloon          struct{ cfg balloonPut }
	patchBalloon        struct{ cfg balloonPatch }
	patchBalloonStats   struct{ cfg balloonStatsPatch }
	putLogger           struct{ cfg loggerPut }
	putMetrics          struct{ cfg metricsConfig }

	startInstance  struct{}
	sendCtrlAltDel struct{}
	flushMetrics   struct{}
	pauseVM        struct{}
	resumeVM       struct{}

	// unsupported is a Firecracker endpoint Vireo does not implement.
	unsupported struct{ what string }
)

func (getInstanceInfo) isAction()     {}
func (getMachineConfig) isAction()    {}
func (getVersion) isAction()          {}
func (getFullConfig) isAction()       {}
func (getBalloon) isAction()          {}
func (getBalloonStats) isAction()     {}
func (updateMachineConfig) isAction() {}
func (putBootSource) isAction()       {}
func (putDrive) isAction()            {}
func (patchDrive) isAction()          {}
func (putNetwork) isAction()          {}
func (patchNetwork) isAction()        {}
func (putVsock) isAction()            {}
func (putBalloon) isAction()          {}
func (patchBalloon) isAction()        {}
func (patchBalloonStats) isAction()   {}
func (putLogger) isAction()           {}
func (putMetrics) isAction()          {}
func (startInstance) isAction()       {}
func (sendCtrlAltDel) isAction()      {}
func (flushMetrics) isAction()        {}
func (pauseVM) isAction()             {}
func (resumeVM) isAction()            {}
func (unsupported) isAction()         {}
