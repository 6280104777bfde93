# archive.cmake - issue #10: scheduler, jobs, S3 client and sinks, archive,
# backup, history (docs/ARCHIVE.md). Included once from the top-level
# CMakeLists.txt after the unit-test loop, so it can add to targets made there.
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
pkg_check_modules(XML2 REQUIRED IMPORTED_TARGET libxml-2.0)

# The plant's calendar is used by the storage dialect too.
target_sources(mcs_common PRIVATE ${CMAKE_SOURCE_DIR}/src/common/localday.c)

add_library(mcs_jobs STATIC
  src/common/s3.c src/common/sink.c
  src/mcsd/scheduler.c src/mcsd/jobs.c src/mcsd/archive.c src/mcsd/backup.c
  src/mcsd/history.c src/mcsd/storage_cfg.c src/mcsd/health.c)
target_include_directories(mcs_jobs PUBLIC src/common src/mcsd)
target_link_libraries(mcs_jobs PUBLIC mcsd_core PkgConfig::CURL PkgConfig::XML2
                      PkgConfig::OPENSSL PkgConfig::ZLIB)

target_link_libraries(mcsd PRIVATE mcs_jobs)
# src/tools/mcs_job.c is picked up by the mcs_*.c glob of the top level.
target_link_libraries(mcs PRIVATE mcs_jobs)

foreach(t test_sched test_sink test_storage_cfg)
  if(TARGET ${t})
    target_link_libraries(${t} PRIVATE mcs_jobs)
  endif()
endforeach()
