// Shared by every fuzz target: inputs reach the code through a file in
// /dev/shm, exactly as a user's file would.
import Foundation

let fuzzDirectory: String = {
    let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    let path = base + "/streamlab-fuzz-\(getpid())"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}()

/// Writes the fuzz input to `name` inside the per-process directory and returns its URL.
func fuzzFile(_ data: UnsafePointer<UInt8>, _ size: Int, name: String) -> URL {
    let url = URL(fileURLWithPath: fuzzDirectory + "/" + name)
    _ = FileManager.default.createFile(atPath: url.path, contents: Data(bytes: data, count: size))
    return url
}

/// Every target, by the name `Fuzz/run.sh` passes in `STREAMLAB_FUZZ_TARGET`. One binary
/// holds them all, so the library is compiled once for the whole set.
let fuzzTargets: [String: (UnsafePointer<UInt8>, Int) -> CInt] = [
    "safetensors": fuzzSafetensors, "config": fuzzConfig, "tokenizer_json": fuzzTokenizerJSON,
    "tiktoken": fuzzTiktoken, "vocab_merges": fuzzVocabMerges, "pretokenizer": fuzzPretokenizer, "npz": fuzzNpz,
]

let selectedFuzzTarget: (UnsafePointer<UInt8>, Int) -> CInt = {
    let name = ProcessInfo.processInfo.environment["STREAMLAB_FUZZ_TARGET"] ?? ""
    guard let target = fuzzTargets[name] else {
        fatalError("set STREAMLAB_FUZZ_TARGET to one of: \(fuzzTargets.keys.sorted().joined(separator: ", "))")
    }
    return target
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    selectedFuzzTarget(data, size)
}
