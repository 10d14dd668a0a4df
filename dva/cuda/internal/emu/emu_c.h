// emu_c.h: the C interface of the emulator, for cgo.
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

enum { EMU_NO_KERNEL = 1, EMU_BAD_ARGS = 2, EMU_BAD_LAUNCH = 3, EMU_DEADLOCK = 4 };

// emu_launch runs kernel name like cuLaunchKernel: params[i] points at parameter i, whose
// size in bytes the caller states in sizes[i] (checked against the kernel's signature).
int emu_launch(const char* name, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
               unsigned smem, void** params, const int* sizes, int nparams);

// emu_kernels writes the kernel names, one a line, into buf and returns their length.
int emu_kernels(char* buf, int len);

#ifdef __cplusplus
}
#endif
