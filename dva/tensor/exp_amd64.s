//go:build amd64 && !purego

#include "textflag.h"

DATA expconst<>+0(SB)/4, $0x42b00000
DATA expconst<>+4(SB)/4, $0x42b00000
DATA expconst<>+8(SB)/4, $0x42b00000
DATA expconst<>+12(SB)/4, $0x42b00000
DATA expconst<>+16(SB)/4, $0x42b00000
DATA expconst<>+20(SB)/4, $0x42b00000
DATA expconst<>+24(SB)/4, $0x42b00000
DATA expconst<>+28(SB)/4, $0x42b00000
DATA expconst<>+32(SB)/4, $0xc2ae0000
DATA expconst<>+36(SB)/4, $0xc2ae0000
DATA expconst<>+40(SB)/4, $0xc2ae0000
DATA expconst<>+44(SB)/4, $0xc2ae0000
DATA expconst<>+48(SB)/4, $0xc2ae0000
DATA expconst<>+52(SB)/4, $0xc2ae0000
DATA expconst<>+56(SB)/4, $0xc2ae0000
DATA expconst<>+60(SB)/4, $0xc2ae0000
DATA expconst<>+64(SB)/4, $0x3fb8aa3b
DATA expconst<>+68(SB)/4, $0x3fb8aa3b
DATA expconst<>+72(SB)/4, $0x3fb8aa3b
DATA expconst<>+76(SB)/4, $0x3fb8aa3b
DATA expconst<>+80(SB)/4, $0x3fb8aa3b
DATA expconst<>+84(SB)/4, $0x3fb8aa3b
DATA expconst<>+88(SB)/4, $0x3fb8aa3b
DATA expconst<>+92(SB)/4, $0x3fb8aa3b
DATA expconst<>+96(SB)/4, $0x3f000000
DATA expconst<>+100(SB)/4, $0x3f000000
DATA expconst<>+104(SB)/4, $0x3f000000
DATA expconst<>+108(SB)/4, $0x3f000000
DATA expconst<>+112(SB)/4, $0x3f000000
DATA expconst<>+116(SB)/4, $0x3f000000
DATA expconst<>+120(SB)/4, $0x3f000000
DATA expconst<>+124(SB)/4, $0x3f000000
DATA expconst<>+128(SB)/4, $0x3f318000
DATA expconst<>+132(SB)/4, $0x3f318000
DATA expconst<>+136(SB)/4, $0x3f318000
DATA expconst<>+140(SB)/4, $0x3f318000
DATA expconst<>+144(SB)/4, $0x3f318000
DATA expconst<>+148(SB)/4, $0x3f318000
DATA expconst<>+152(SB)/4, $0x3f318000
DATA expconst<>+156(SB)/4, $0x3f318000
DATA expconst<>+160(SB)/4, $0xb95e8083
DATA expconst<>+164(SB)/4, $0xb95e8083
DATA expconst<>+168(SB)/4, $0xb95e8083
DATA expconst<>+172(SB)/4, $0xb95e8083
DATA expconst<>+176(SB)/4, $0xb95e8083
DATA expconst<>+180(SB)/4, $0xb95e8083
DATA expconst<>+184(SB)/4, $0xb95e8083
DATA expconst<>+188(SB)/4, $0xb95e8083
DATA expconst<>+192(SB)/4, $0x39506967
DATA expconst<>+196(SB)/4, $0x39506967
DATA expconst<>+200(SB)/4, $0x39506967
DATA expconst<>+204(SB)/4, $0x39506967
DATA expconst<>+208(SB)/4, $0x39506967
DATA expconst<>+212(SB)/4, $0x39506967
DATA expconst<>+216(SB)/4, $0x39506967
DATA expconst<>+220(SB)/4, $0x39506967
DATA expconst<>+224(SB)/4, $0x3ab743ce
DATA expconst<>+228(SB)/4, $0x3ab743ce
DATA expconst<>+232(SB)/4, $0x3ab743ce
DATA expconst<>+236(SB)/4, $0x3ab743ce
DATA expconst<>+240(SB)/4, $0x3ab743ce
DATA expconst<>+244(SB)/4, $0x3ab743ce
DATA expconst<>+248(SB)/4, $0x3ab743ce
DATA expconst<>+252(SB)/4, $0x3ab743ce
DATA expconst<>+256(SB)/4, $0x3c088908
DATA expconst<>+260(SB)/4, $0x3c088908
DATA expconst<>+264(SB)/4, $0x3c088908
DATA expconst<>+268(SB)/4, $0x3c088908
DATA expconst<>+272(SB)/4, $0x3c088908
DATA expconst<>+276(SB)/4, $0x3c088908
DATA expconst<>+280(SB)/4, $0x3c088908
DATA expconst<>+284(SB)/4, $0x3c088908
DATA expconst<>+288(SB)/4, $0x3d2aa9c1
DATA expconst<>+292(SB)/4, $0x3d2aa9c1
DATA expconst<>+296(SB)/4, $0x3d2aa9c1
DATA expconst<>+300(SB)/4, $0x3d2aa9c1
DATA expconst<>+304(SB)/4, $0x3d2aa9c1
DATA expconst<>+308(SB)/4, $0x3d2aa9c1
DATA expconst<>+312(SB)/4, $0x3d2aa9c1
DATA expconst<>+316(SB)/4, $0x3d2aa9c1
DATA expconst<>+320(SB)/4, $0x3e2aaaaa
DATA expconst<>+324(SB)/4, $0x3e2aaaaa
DATA expconst<>+328(SB)/4, $0x3e2aaaaa
DATA expconst<>+332(SB)/4, $0x3e2aaaaa
DATA expconst<>+336(SB)/4, $0x3e2aaaaa
DATA expconst<>+340(SB)/4, $0x3e2aaaaa
DATA expconst<>+344(SB)/4, $0x3e2aaaaa
DATA expconst<>+348(SB)/4, $0x3e2aaaaa
DATA expconst<>+352(SB)/4, $0x3f000000
DATA expconst<>+356(SB)/4, $0x3f000000
DATA expconst<>+360(SB)/4, $0x3f000000
DATA expconst<>+364(SB)/4, $0x3f000000
DATA expconst<>+368(SB)/4, $0x3f000000
DATA expconst<>+372(SB)/4, $0x3f000000
DATA expconst<>+376(SB)/4, $0x3f000000
DATA expconst<>+380(SB)/4, $0x3f000000
DATA expconst<>+384(SB)/4, $0x3f800000
DATA expconst<>+388(SB)/4, $0x3f800000
DATA expconst<>+392(SB)/4, $0x3f800000
DATA expconst<>+396(SB)/4, $0x3f800000
DATA expconst<>+400(SB)/4, $0x3f800000
DATA expconst<>+404(SB)/4, $0x3f800000
DATA expconst<>+408(SB)/4, $0x3f800000
DATA expconst<>+412(SB)/4, $0x3f800000
DATA expconst<>+416(SB)/4, $0x0000007f
DATA expconst<>+420(SB)/4, $0x0000007f
DATA expconst<>+424(SB)/4, $0x0000007f
DATA expconst<>+428(SB)/4, $0x0000007f
DATA expconst<>+432(SB)/4, $0x0000007f
DATA expconst<>+436(SB)/4, $0x0000007f
DATA expconst<>+440(SB)/4, $0x0000007f
DATA expconst<>+444(SB)/4, $0x0000007f
DATA expconst<>+448(SB)/4, $0xbfd9db23
DATA expconst<>+452(SB)/4, $0xbfd9db23
DATA expconst<>+456(SB)/4, $0xbfd9db23
DATA expconst<>+460(SB)/4, $0xbfd9db23
DATA expconst<>+464(SB)/4, $0xbfd9db23
DATA expconst<>+468(SB)/4, $0xbfd9db23
DATA expconst<>+472(SB)/4, $0xbfd9db23
DATA expconst<>+476(SB)/4, $0xbfd9db23
GLOBL expconst<>(SB), RODATA|NOPTR, $480

// func quickGELUAVX2(x []float32)
// x[i] = x[i] / (1 + e^(-1.702 x[i])) for the first len(x) &^ 7 elements.
TEXT ·quickGELUAVX2(SB), NOSPLIT, $0-24
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	SHRQ $3, CX
	JZ gdone
gloop:
	VMOVUPS (SI), Y6
	VMULPS expconst<>+448(SB), Y6, Y0
	VMINPS expconst<>+0(SB), Y0, Y0
	VMAXPS expconst<>+32(SB), Y0, Y0
	VMULPS expconst<>+64(SB), Y0, Y1
	VADDPS expconst<>+96(SB), Y1, Y1
	VROUNDPS $1, Y1, Y1
	VFNMADD231PS expconst<>+128(SB), Y1, Y0
	VFNMADD231PS expconst<>+160(SB), Y1, Y0
	VMOVUPS expconst<>+192(SB), Y2
	VFMADD213PS expconst<>+224(SB), Y0, Y2
	VFMADD213PS expconst<>+256(SB), Y0, Y2
	VFMADD213PS expconst<>+288(SB), Y0, Y2
	VFMADD213PS expconst<>+320(SB), Y0, Y2
	VFMADD213PS expconst<>+352(SB), Y0, Y2
	VMULPS Y0, Y0, Y3
	VFMADD213PS Y0, Y3, Y2
	VADDPS expconst<>+384(SB), Y2, Y2
	VCVTPS2DQ Y1, Y1
	VPADDD expconst<>+416(SB), Y1, Y1
	VPSLLD $23, Y1, Y1
	VMULPS Y1, Y2, Y0
	VADDPS expconst<>+384(SB), Y0, Y0
	VDIVPS Y0, Y6, Y6
	VMOVUPS Y6, (SI)
	ADDQ $32, SI
	DECQ CX
	JNZ gloop
gdone:
	VZEROUPPER
	RET

// func expShiftSumAVX2(x []float32, mx, scale float32) float32
// x[i] = e^((x[i]-mx)*scale) for the first len(x) &^ 7 elements; returns their sum.
TEXT ·expShiftSumAVX2(SB), NOSPLIT, $0-36
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	VBROADCASTSS mx+24(FP), Y4
	VBROADCASTSS scale+28(FP), Y5
	VXORPS Y7, Y7, Y7
	SHRQ $3, CX
	JZ sdone
sloop:
	VMOVUPS (SI), Y0
	VSUBPS Y4, Y0, Y0
	VMULPS Y5, Y0, Y0
	VMINPS expconst<>+0(SB), Y0, Y0
	VMAXPS expconst<>+32(SB), Y0, Y0
	VMULPS expconst<>+64(SB), Y0, Y1
	VADDPS expconst<>+96(SB), Y1, Y1
	VROUNDPS $1, Y1, Y1
	VFNMADD231PS expconst<>+128(SB), Y1, Y0
	VFNMADD231PS expconst<>+160(SB), Y1, Y0
	VMOVUPS expconst<>+192(SB), Y2
	VFMADD213PS expconst<>+224(SB), Y0, Y2
	VFMADD213PS expconst<>+256(SB), Y0, Y2
	VFMADD213PS expconst<>+288(SB), Y0, Y2
	VFMADD213PS expconst<>+320(SB), Y0, Y2
	VFMADD213PS expconst<>+352(SB), Y0, Y2
	VMULPS Y0, Y0, Y3
	VFMADD213PS Y0, Y3, Y2
	VADDPS expconst<>+384(SB), Y2, Y2
	VCVTPS2DQ Y1, Y1
	VPADDD expconst<>+416(SB), Y1, Y1
	VPSLLD $23, Y1, Y1
	VMULPS Y1, Y2, Y0
	VMOVUPS Y0, (SI)
	VADDPS Y0, Y7, Y7
	ADDQ $32, SI
	DECQ CX
	JNZ sloop
sdone:
	VEXTRACTF128 $1, Y7, X6
	VADDPS X6, X7, X7
	VHADDPS X7, X7, X7
	VHADDPS X7, X7, X7
	VMOVSS X7, ret+32(FP)
	VZEROUPPER
	RET
