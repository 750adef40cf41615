# CBAM Lab for a classroom server or Docker-based hosting (e.g. Hugging Face Spaces, Docker SDK).
#   docker build -t cbam-lab .
#   docker run -p 8501:8501 cbam-lab          # then open http://localhost:8501
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TORCH_HOME=/data/torch \
    MALLOC_ARENA_MAX=2 \
    MALLOC_MMAP_THRESHOLD_=1048576

# CPU wheels of PyTorch keep the image small; set TORCH_INDEX to "" for the default (CUDA) build.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

# A font with CJK glyphs for the figures in Chinese (cbam/fonts.py).
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-noto-cjk \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1000 lab && mkdir -p /data/torch && chown lab /data/torch
WORKDIR /home/lab/app

COPY requirements.txt .
RUN pip install ${TORCH_INDEX:+--extra-index-url $TORCH_INDEX} -r requirements.txt

COPY --chown=lab . .
USER lab

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4).read() != b'ok')"

CMD ["streamlit", "run", "app.py", "--server.address=0.0.0.0", "--server.port=8501", "--server.headless=true"]
