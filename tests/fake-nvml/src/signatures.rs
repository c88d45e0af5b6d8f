//! Compile-time proof that every exported function has exactly the signature
//! nvml-wrapper-sys expects (a fn item coerces to a fn pointer only then).

#![allow(dead_code, unused_assignments)]

use crate::device::*;
use crate::events::*;
use crate::gpm::*;
use crate::mig::*;
use crate::*;

macro_rules! same_signature {
    ($lib:ident: $($f:ident),* $(,)?) => {
        $( if let Ok(mut p) = $lib.$f { p = $f; let _ = p; } )*
    };
}

fn check(lib: NvmlLib) {
    same_signature!(lib:
        nvmlInit_v2, nvmlShutdown, nvmlSystemGetDriverVersion, nvmlSystemGetCudaDriverVersion_v2,
        nvmlDeviceGetCount_v2, nvmlDeviceGetHandleByIndex_v2, nvmlDeviceGetName, nvmlDeviceGetUUID,
        nvmlDeviceGetPciInfo_v3, nvmlDeviceGetMinorNumber, nvmlDeviceGetUtilizationRates,
        nvmlDeviceGetMemoryInfo_v2, nvmlDeviceGetTemperature, nvmlDeviceGetPowerUsage,
        nvmlDeviceGetEnforcedPowerLimit, nvmlDeviceGetTotalEnergyConsumption, nvmlDeviceGetClockInfo,
        nvmlDeviceGetEccMode, nvmlDeviceGetTotalEccErrors, nvmlDeviceGetComputeRunningProcesses_v3,
        nvmlDeviceGetMigMode, nvmlDeviceGetCurrentClocksThrottleReasons, nvmlDeviceGetNumFans,
        nvmlDeviceGetFanSpeed_v2, nvmlDeviceGetCudaComputeCapability,
        nvmlEventSetCreate, nvmlDeviceRegisterEvents, nvmlEventSetWait_v2, nvmlEventSetFree,
        nvmlDeviceGetMaxMigDeviceCount, nvmlDeviceGetMigDeviceHandleByIndex, nvmlDeviceIsMigDeviceHandle,
        nvmlDeviceGetDeviceHandleFromMigDeviceHandle, nvmlDeviceGetGpuInstanceId,
        nvmlDeviceGetComputeInstanceId, nvmlDeviceGetAttributes_v2,
        nvmlGpmQueryDeviceSupport, nvmlGpmSampleAlloc, nvmlGpmSampleFree, nvmlGpmSampleGet,
        nvmlGpmMigSampleGet, nvmlGpmMetricsGet,
    );
}
