# Writes OUT: a C file with every migration in FILES as a NUL-terminated byte
# array, in file-name order, plus a table of (version, name, sql).
set(body "/* Generated from db/migrations by cmake/embed_sql.cmake. Do not edit. */\n#include <stddef.h>\n#include \"migrate.h\"\n")
set(table "const struct mcs_migration mcs_migrations[] = {\n")
# DIR (all *.sql in it) is how CMakeLists.txt calls us: a FILES list of
# several entries would be split by the shell at its semicolons.
if(DIR)
  file(GLOB FILES ${DIR}/*.sql)
  list(SORT FILES)
endif()
set(i 0)
foreach(f ${FILES})
  get_filename_component(name ${f} NAME)
  string(REGEX MATCH "^[0-9]+" ver ${name})
  math(EXPR ver "${ver}")
  file(READ ${f} hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
  string(APPEND body "static const char m${i}[] = {${hex}0x00};\n")
  string(APPEND table "    {${ver}, \"${name}\", m${i}},\n")
  math(EXPR i "${i} + 1")
endforeach()
string(APPEND table "    {0, NULL, NULL},\n};\n")
file(WRITE ${OUT} "${body}${table}")
