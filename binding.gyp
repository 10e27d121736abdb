# node-gyp build of the same sources as CMakeLists.txt (`npm run build:gyp`): baseline flags for
# the addon, the AVX2 and AVX-512 kernels in their own static libraries with their own flags.
{
  "target_defaults": {
    "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
    "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_CPP_EXCEPTIONS_ALL"],
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++1y", "-std=gnu++17"],
    "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-ffp-contract=off"],
    "xcode_settings": {
      "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
      "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
      "OTHER_CPLUSPLUSFLAGS": ["-O3", "-ffp-contract=off"]
    },
    "msvs_settings": {"VCCLCompilerTool": {"ExceptionHandling": 1}}
  },
  "targets": [
    {
      "target_name": "flower_native",
      "sources": [
        "native/simd_dispatch.cc",
        "native/score_scalar.cc",
        "native/threads.cc",
        "native/topk.cc",
        "native/bimatch.cc",
        "native/eigen.cc",
        "native/matmul.cc",
        "native/chunk_extract.cc",
        "native/bandwidth.cc",
        "native/addon.cc",
        "native/controls_binding.cc",
        "native/topk_binding.cc",
        "native/bimatch_binding.cc",
        "native/eigen_binding.cc",
        "native/matmul_binding.cc",
        "native/chunk_extract_binding.cc",
        "native/bandwidth_binding.cc",
        "native/mmap_binding.cc"
      ],
      "conditions": [
        ["target_arch == 'x64'", {"dependencies": ["flower_avx2", "flower_avx512"]}],
        ["target_arch == 'arm64'", {"sources": ["native/score_neon.cc"]}]
      ]
    }
  ],
  "conditions": [
    ["target_arch == 'x64'", {
      "targets": [
        {
          "target_name": "flower_avx2",
          "type": "static_library",
          "sources": ["native/score_avx2.cc"],
          "cflags_cc": ["-mavx2", "-mfma"],
          "xcode_settings": {"OTHER_CPLUSPLUSFLAGS": ["-O3", "-mavx2", "-mfma"]},
          "msvs_settings": {"VCCLCompilerTool": {"EnableEnhancedInstructionSet": 5}}
        },
        {
          "target_name": "flower_avx512",
          "type": "static_library",
          "sources": ["native/score_avx512.cc"],
          "cflags_cc": ["-mavx512f", "-mfma", "-Wno-uninitialized", "-Wno-maybe-uninitialized"],
          "xcode_settings": {"OTHER_CPLUSPLUSFLAGS": ["-O3", "-mavx512f", "-mfma"]},
          "msvs_settings": {"VCCLCompilerTool": {"AdditionalOptions": ["/arch:AVX512"]}}
        }
      ]
    }]
  ]
}
