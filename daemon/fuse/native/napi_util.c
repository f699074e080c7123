/*
 * Reading and making JS values, for the JS thread only. Kept apart so the
 * files that speak N-API read as what they do, not as napi_status checks.
 */
#include "strata_fuse.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void throw_error(napi_env env, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) napi_throw_error(env, NULL, msg);
}

void clear_exception(napi_env env) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
    napi_value ex;
    napi_get_and_clear_last_exception(env, &ex);
  }
}

int value_type(napi_env env, napi_value v) {
  napi_valuetype t = napi_undefined;
  if (!v || napi_typeof(env, v, &t) != napi_ok) return napi_undefined;
  return t;
}

/* number or bigint -> int64 (exact for integers; doubles are truncated) */
int get_i64(napi_env env, napi_value v, int64_t *out) {
  int t = value_type(env, v);
  if (t == napi_number) return NAPI_OK(napi_get_value_int64(env, v, out));
  if (t == napi_bigint) {
    bool lossless;
    return NAPI_OK(napi_get_value_bigint_int64(env, v, out, &lossless));
  }
  return 0;
}

char *get_string(napi_env env, napi_value v) {
  size_t len = 0;
  if (value_type(env, v) != napi_string) return NULL;
  if (!NAPI_OK(napi_get_value_string_utf8(env, v, NULL, 0, &len))) return NULL;
  char *s = malloc(len + 1);
  if (!s) return NULL;
  if (!NAPI_OK(napi_get_value_string_utf8(env, v, s, len + 1, &len))) { free(s); return NULL; }
  return s;
}

napi_value get_prop(napi_env env, napi_value obj, const char *name) {
  napi_value v = NULL;
  bool has = false;
  if (!NAPI_OK(napi_has_named_property(env, obj, name, &has)) || !has) return NULL;
  if (!NAPI_OK(napi_get_named_property(env, obj, name, &v))) return NULL;
  return v;
}

int opt_bool(napi_env env, napi_value obj, const char *name, int def) {
  napi_value v = get_prop(env, obj, name);
  bool b;
  if (value_type(env, v) == napi_boolean && NAPI_OK(napi_get_value_bool(env, v, &b))) return b;
  return def;
}

double opt_double(napi_env env, napi_value obj, const char *name, double def) {
  napi_value v = get_prop(env, obj, name);
  double d;
  if (value_type(env, v) == napi_number && NAPI_OK(napi_get_value_double(env, v, &d)) && d == d) return d;
  return def;
}

napi_value make_i64(napi_env env, int64_t v) {
  napi_value out = NULL;
  if (!NAPI_OK(napi_create_int64(env, v, &out))) return NULL;
  return out;
}

napi_value make_str_or_null(napi_env env, const char *s) {
  napi_value out = NULL;
  if (s) {
    if (!NAPI_OK(napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &out))) return NULL;
  } else if (!NAPI_OK(napi_get_null(env, &out))) {
    return NULL;
  }
  return out;
}

/* string[] (and, when modes_v is an array, a parallel number[]) -> C arrays.
   Used for readdir's reply and for invalidate()'s paths. */
int parse_names(napi_env env, napi_value names_v, napi_value modes_v, char ***names_out,
                uint32_t **modes_out, uint32_t *n_out) {
  bool is_arr = false;
  uint32_t n = 0;
  if (!names_v || !NAPI_OK(napi_is_array(env, names_v, &is_arr)) || !is_arr) return 0;
  if (!NAPI_OK(napi_get_array_length(env, names_v, &n))) return 0;
  char **names = calloc(n ? n : 1, sizeof *names);
  if (!names) return 0;
  uint32_t *modes = NULL;
  uint32_t n_modes = 0;
  if (modes_v && NAPI_OK(napi_is_array(env, modes_v, &is_arr)) && is_arr &&
      NAPI_OK(napi_get_array_length(env, modes_v, &n_modes)) && n_modes > 0) {
    modes = calloc(n, sizeof *modes);
    if (!modes && n) { free(names); return 0; }
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value el;
    if (!NAPI_OK(napi_get_element(env, names_v, i, &el)) || !(names[i] = get_string(env, el))) {
      free_names(names, n);
      free(modes);
      return 0;
    }
    if (modes && i < n_modes) {
      napi_value m;
      int64_t mv;
      if (NAPI_OK(napi_get_element(env, modes_v, i, &m)) && get_i64(env, m, &mv)) modes[i] = (uint32_t)mv;
    }
  }
  *names_out = names;
  *modes_out = modes;
  *n_out = n;
  return 1;
}
