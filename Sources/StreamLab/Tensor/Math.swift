#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Scalar transcendentals from the C library, in one place so the kernels do
/// not each import the platform module (Tensor, so every folder below may use them).
enum CMath {
    @inline(__always) static func exp(_ x: Float) -> Float { expf(x) }
    @inline(__always) static func log(_ x: Double) -> Double { Glibc_log(x) }
    @inline(__always) static func expDouble(_ x: Double) -> Double { Glibc_exp(x) }
    @inline(__always) static func tanh(_ x: Float) -> Float { tanhf(x) }
    @inline(__always) static func erf(_ x: Float) -> Float { erff(x) }
    @inline(__always) static func cos(_ x: Double) -> Double { Glibc_cos(x) }
    @inline(__always) static func sin(_ x: Double) -> Double { Glibc_sin(x) }
    @inline(__always) static func acos(_ x: Double) -> Double { Glibc_acos(x) }
    @inline(__always) static func pow(_ x: Float, _ y: Float) -> Float { powf(x, y) }
    @inline(__always) static func pow(_ x: Double, _ y: Double) -> Double { Glibc_pow(x, y) }
    @inline(__always) static func sqrt(_ x: Double) -> Double { x.squareRoot() }
}

@inline(__always) private func Glibc_exp(_ x: Double) -> Double { exp(x) }
@inline(__always) private func Glibc_log(_ x: Double) -> Double { log(x) }
@inline(__always) private func Glibc_cos(_ x: Double) -> Double { cos(x) }
@inline(__always) private func Glibc_sin(_ x: Double) -> Double { sin(x) }
@inline(__always) private func Glibc_acos(_ x: Double) -> Double { acos(x) }
@inline(__always) private func Glibc_pow(_ x: Double, _ y: Double) -> Double { pow(x, y) }
