// Argument checks for the N-API entry points. index.ts validates first; these are the last line
// of defence, so a bad call from anywhere else is a TypeError/RangeError, never a crash.
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>

namespace flower {

template <typename T>
struct TypedArrayTraits;
template <>
struct TypedArrayTraits<float> {
  static constexpr napi_typedarray_type type = napi_float32_array;
  static constexpr const char* name = "Float32Array";
};
template <>
struct TypedArrayTraits<double> {
  static constexpr napi_typedarray_type type = napi_float64_array;
  static constexpr const char* name = "Float64Array";
};
template <>
struct TypedArrayTraits<int32_t> {
  static constexpr napi_typedarray_type type = napi_int32_array;
  static constexpr const char* name = "Int32Array";
};
template <>
struct TypedArrayTraits<uint8_t> {
  static constexpr napi_typedarray_type type = napi_uint8_array;
  static constexpr const char* name = "Uint8Array";
};

// A typed-array argument of element type T (any other type is a TypeError).
template <typename T>
Napi::TypedArrayOf<T> typed_arg(const Napi::CallbackInfo& info, size_t index, const char* what) {
  const Napi::Value value = info[index];
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != TypedArrayTraits<T>::type)
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a " + TypedArrayTraits<T>::name);
  return value.As<Napi::TypedArrayOf<T>>();
}

// An integer argument in [min, max] (not a number: TypeError; out of range or fractional: RangeError).
inline int64_t int_arg(const Napi::CallbackInfo& info, size_t index, const char* what, int64_t min,
                       int64_t max = INT32_MAX) {
  const Napi::Value value = info[index];
  if (!value.IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a number");
  const double number = value.As<Napi::Number>().DoubleValue();
  if (!(number >= double(min) && number <= double(max)) || number != double(int64_t(number)))
    throw Napi::RangeError::New(info.Env(), std::string(what) + " must be an integer in [" + std::to_string(min) +
                                                ", " + std::to_string(max) + "]");
  return int64_t(number);
}

inline void range_check(const Napi::Env& env, bool ok, const std::string& message) {
  if (!ok) throw Napi::RangeError::New(env, message);
}

}  // namespace flower
